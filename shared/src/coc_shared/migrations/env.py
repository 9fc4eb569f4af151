from coc_shared.migrate import run_env
from coc_shared.tables import ops_metadata

run_env(ops_metadata)
