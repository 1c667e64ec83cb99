"""The results side: what ``launch report``, the end-of-sweep table and the HMC reproduction report compute from
MLflow and the result files. Imports no Ray (a test asserts it), so reports run anywhere MLflow is reachable.

- :mod:`.stats`: every statistic, once (Student-t CI, paired Wilcoxon, Friedman with its tie correction,
  Nemenyi, Holm, the paired bootstrap over test rows);
- :mod:`.summary`: the end-of-sweep comparison table;
- :mod:`.report`: ``launch report`` (tables, tests, plots; Markdown, HTML);
- :mod:`.search`: what a tpe search learned;
- :mod:`.hmc`: the HMC reproduction's report.
"""
