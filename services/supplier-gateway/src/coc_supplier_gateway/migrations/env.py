from coc_shared.migrate import run_env
from coc_supplier_gateway.adapters.tables import metadata

run_env(metadata)
