from coc_notifications.adapters.orm import metadata
from coc_shared.migrate import run_env

run_env(metadata)
