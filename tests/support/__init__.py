"""Helpers the test modules share, one module per job: a free port (ports), running the
command as users run it (cli_runs), small synthetic stores (stores), a DINOv2 predictor
folder without training (predictors), vote fractions by answer code (votes), and the
third-party checkers (third_party).

Importable as `support.*` from any test module: pytest puts tests/ on sys.path for the
conftest.py there.
"""
