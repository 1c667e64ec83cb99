"""The results side: what ``launch report``, the end-of-sweep table and the HMC reproduction report compute from
MLflow and the result files. Imports no Ray (a test asserts it), so reports run anywhere MLflow is reachable.

- :mod:`.stats`: every statistic, once (the seeds' spread, Student-t CI, paired Wilcoxon, Friedman with its tie
  correction, Nemenyi, Holm; the paired bootstrap over test rows in :mod:`.bootstrap`);
- :mod:`.summary`: the end-of-sweep comparison table (``summary.md``);
- :mod:`.report`: ``launch report`` (``report/report.md``: tables, tests, plots; Markdown, HTML), as named steps;
- :mod:`.compare`: each setting against the baseline (paired bootstrap, per-label view, threshold rules);
- :mod:`.verdict`: the few sentences at the top of every report and in the parent run's description;
- :mod:`.search`: what a tpe search learned;
- :mod:`.hmc`: the HMC reproduction's report.

Settings are keyed by the plan's group (``entry:draw``) and seeds by the ``seed`` param, never by run names.
Shared constants (the frequency buckets, TPE's start-up rule) come from ``tailsweep._common``: nothing here
imports ``tailsweep.orchestrator`` (a test scans the imports).
"""
