from coc_console.adapters.tables import metadata
from coc_shared.migrate import run_env

run_env(metadata)
