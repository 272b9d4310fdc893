"""bench_review_pages: the review pages under load (bench/review_pages.py)."""
