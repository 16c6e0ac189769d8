"""Batch prediction, client side: stage inputs, run one job per spec entry, bring results home.

The package is split by responsibility: `formats` (pure row / TFRecord rules,
shared with the emulator), `staging` (turn local inputs into content-addressed
objects in the stack bucket), `rows` (the on-disk table of input rows: keys,
positions, labels, where each prediction landed), `results` (merge output shards in input order,
errors with line numbers, accuracy and confusion matrix), `runner` (create or
re-attach to the job, wait, collect). Importing the package imports nothing
heavy: submodules are imported where they are used.

Must not: import google.cloud (only deployer.providers does), deployer.emulator
or deployer.serving.
"""

from __future__ import annotations
