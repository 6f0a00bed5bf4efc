"""Operations and reports on the same app: status, run, schedule, retry, update, withdraw, approve."""
