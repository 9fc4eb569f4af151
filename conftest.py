pytest_plugins = ["coc_shared.testing"]
