"""One module per `galaxy-hpc evaluate` sub-subcommand (listed in cli/evaluate_cmd.py)."""
