"""The label stage: per-token value labels joined from roll-ins, roll-outs and verdicts."""
