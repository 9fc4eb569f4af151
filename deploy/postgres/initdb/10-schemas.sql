-- Run once by the postgres image, on an empty data volume, as POSTGRES_USER (coc) in POSTGRES_DB (coc).
--
-- Each service owns one schema named after it, and every service's migration also upgrades the
-- shared `ops` schema (parked messages). The migrations create the schemas they need themselves
-- (CREATE SCHEMA IF NOT EXISTS), but the five NAME-migrate containers start at the same moment, and
-- concurrent CREATE SCHEMA IF NOT EXISTS of one schema can fail on PostgreSQL with a duplicate key;
-- creating them here first removes that race. tests/test_deployment_consistency.py keeps this list
-- equal to the services' schemas.
CREATE SCHEMA IF NOT EXISTS orders;
CREATE SCHEMA IF NOT EXISTS payments;
CREATE SCHEMA IF NOT EXISTS supplier_gateway;
CREATE SCHEMA IF NOT EXISTS notifications;
CREATE SCHEMA IF NOT EXISTS gdpr;
CREATE SCHEMA IF NOT EXISTS ops;
