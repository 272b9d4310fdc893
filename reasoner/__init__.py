"""The reasoner: gpt-oss-safeguard classifying queued work. `engine` builds the process's model engine
from the settings, `sql` holds the claim/store/sweep statements, `pipeline` the steps of one batch,
`sweeper` the re-queueing of dead workers' rows, `worker` the long-lived loop of `safeguard_worker`.

It sits above the review app: it reads and writes the console's classifications and tells the layers
that listen through `console.signals.verdicts_stored`.
"""
