"""The evaluation workbench's URLs (namespace `evaluations`), mounted at /evaluations/ by console/urls.py."""

from __future__ import annotations

from django.urls import path

from evaluations import import_pages, pages, shadow_pages

app_name = "evaluations"

urlpatterns = [
    path("policies/<slug:slug>/", pages.workbench, name="workbench"),
    path("policies/<slug:slug>/golden-set/", pages.golden_set, name="golden-set"),
    path("sets/<int:set_id>/", pages.set_detail, name="set"),
    path("sets/<int:set_id>/required/", pages.set_required, name="set-required"),
    path("sets/<int:set_id>/examples/<int:example_id>/label/", pages.relabel, name="relabel"),
    path("sets/<int:set_id>/examples/delete/", pages.delete_examples, name="delete-examples"),
    path("sets/<int:set_id>/delete/", pages.delete_set, name="delete-set"),
    path("sets/<int:set_id>/runs/new/", pages.start_run, name="start-run"),
    path("runs/<int:run_id>/", pages.run_detail, name="run"),
    path("runs/<int:run_id>/cancel/", pages.cancel_run, name="cancel-run"),
    path("runs/<int:run_id>/results/<int:result_id>/", pages.result_detail, name="result"),
    path("runs/<int:run_id>/metrics.json", pages.metrics_json, name="metrics-json"),
    path("runs/<int:run_id>/results.csv", pages.results_csv, name="results-csv"),
    path("compare/", pages.compare_runs, name="compare"),
    # shadow mode: a draft beside the published version on a share of live items
    path("policies/<slug:slug>/shadow/", shadow_pages.start, name="start-shadow"),
    path("policies/<slug:slug>/shadow/summary/", shadow_pages.shadow_summary, name="shadow-summary"),
    path("shadows/<int:run_id>/", shadow_pages.shadow_detail, name="shadow"),
    path("shadows/<int:run_id>/stop/", shadow_pages.stop, name="stop-shadow"),
    # the import side: upload a file, then map its columns (the token names the upload in this session)
    path("import/", import_pages.upload, name="import"),
    path("import/<str:token>/", import_pages.import_mapping, name="import-mapping"),
]
