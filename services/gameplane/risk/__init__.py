"""The risk service: rules as data, a feature store fed by events, allow/review/deny decisions
for deposits and withdrawals, harm scores from play, and review cases for the back office."""
