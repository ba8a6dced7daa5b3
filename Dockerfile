# One image for the three Dagster services of docker-compose.yml: the code location (the default command),
# the webserver and the daemon (their commands are set in docker-compose.yml).
#   docker build -t sigmasight-pipeline .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/dagster/app

# The project as it is in the repository. The install is editable, the way `make install` does it, and
# that matters: Definitions are loaded with dg.load_from_defs_folder, which looks for pyproject.toml
# ([tool.dg]) above the package, and the SQL models are read from dbt_like_sql/ beside the package; a
# plain `pip install .` into site-packages has neither and the code location fails to load. Every
# dependency ships manylinux wheels (psycopg and psycopg2 binaries included): no compiler needed.
COPY pyproject.toml README.md ./
COPY sigmasight_pipeline ./sigmasight_pipeline
COPY dbt_like_sql ./dbt_like_sql
RUN pip install -e . && dagster --version

# The workspace of the webserver and the daemon (deploy/workspace-docker.yaml).
COPY deploy ./deploy

# The Dagster instance: PostgreSQL storage from the DAGSTER_PG_* variables (dagster.yaml). Compute logs
# and local artifacts go to $DAGSTER_HOME/storage, a volume shared by the services in docker-compose.yml.
ENV DAGSTER_HOME=/opt/dagster/dagster_home \
    SIGMASIGHT_HOME=/opt/dagster/sigmasight \
    SIGMASIGHT_REPORTS_DIR=/opt/dagster/reports \
    SIGMASIGHT_MARKET_DATA=sample
COPY dagster.yaml $DAGSTER_HOME/dagster.yaml

# Non-root. The writable folders are created here, owned by that user, so named volumes mounted on them
# start with the same owner.
RUN useradd --system --uid 10001 --create-home --home-dir /home/dagster dagster \
 && mkdir -p "$DAGSTER_HOME/storage" "$SIGMASIGHT_HOME" "$SIGMASIGHT_REPORTS_DIR" \
 && chown -R dagster:dagster "$DAGSTER_HOME" "$SIGMASIGHT_HOME" "$SIGMASIGHT_REPORTS_DIR"
USER dagster

# 4000: the code location's gRPC server; 3000: the webserver (when run with its command).
EXPOSE 4000 3000

CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "sigmasight_pipeline.definitions", "--location-name", "sigmasight_pipeline"]
