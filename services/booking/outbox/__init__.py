"""The transactional outbox's jobs: the relay that publishes committed
changes to their Redis streams (`relay`) and the upkeep that keeps the table
small and its gauges current (`upkeep`). The rows are written by the
repository (services/booking/repository/sql.py) in each change's own
transaction."""
