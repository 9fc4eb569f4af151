from coc_payments.adapters.archive_tables import archive_metadata
from coc_shared.migrate import run_env

run_env(archive_metadata)
