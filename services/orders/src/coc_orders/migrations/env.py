from coc_orders.adapters.tables import metadata
from coc_shared.migrate import run_env

run_env(metadata)
