"""The evaluation workbench: labelled sets, runs of a policy version over a set through the reasoner's
engine, prompt and parser, their metrics, and comparisons between runs."""
