# One image for the three services, the gateway and the migration job; compose picks the command.

FROM python:3.11-slim AS protos
WORKDIR /app
COPY requirements/ requirements/
RUN pip install --no-cache-dir grpcio-tools==1.71.2 protobuf==5.29.5
COPY protos/ protos/
RUN mkdir gen && python -m grpc_tools.protoc -Iprotos --python_out=gen --grpc_python_out=gen \
    $(find protos -name '*.proto')

# The web page and /docs's Swagger UI, built from the pinned npm packages (the gateway serves web/dist).
FROM node:20-slim AS web
WORKDIR /app/web
COPY web/package.json web/package-lock.json web/.npmrc ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
RUN npm run build

FROM python:3.11-slim
WORKDIR /app
COPY requirements/base.txt requirements/base.txt
RUN pip install --no-cache-dir -r requirements/base.txt && useradd --system --no-create-home confbook
COPY --from=protos /app/gen gen
COPY --from=web /app/web/dist web/dist
COPY libs libs
COPY services services
COPY gateway gateway
# The migration job: schemas, then the broker's accounts and queues.
COPY scripts/__init__.py scripts/migrate.py scripts/broker_accounts.py scripts/queue_upgrade.py scripts/
# The code imports from the repository root, libs/ and the generated gen/.
ENV PYTHONPATH=/app:/app/libs:/app/gen \
    PYTHONUNBUFFERED=1 \
    LISTEN_HOST=0.0.0.0
USER confbook
