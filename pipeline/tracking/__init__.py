"""The MLflow edge: the store and its runs (``store``), the logged model (``models``), and
how a study is recorded (``record``). Only this package imports MLflow.
"""
