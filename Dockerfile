# Image of the connector, built the way Airbyte builds its Python connector images:
# the published Airbyte base (pinned by digest, same value as connectorBuildOptions.baseImage
# in metadata.yaml), the package installed with pip, the console script as entrypoint.
# Without a registry, build on the local stand-in: scripts/image.sh base && scripts/image.sh build
ARG BASE_IMAGE=docker.io/airbyte/python-connector-base:4.0.2@sha256:9fdb1888c4264cf6fee473649ecb593f56f58e5d0096a87ee0b231777e2e3e73
FROM ${BASE_IMAGE}

# The base runs as the unprivileged `airbyte` user; installing into the system Python needs root.
USER root
WORKDIR /airbyte/integration_code

# manifest.yaml sits at the repo root; pyproject.toml force-includes it into the wheel.
# constraints.txt pins every dependency at the version CI tested (`make lock` writes it).
COPY pyproject.toml README.md manifest.yaml constraints.txt ./
COPY source_stripe_ontologie ./source_stripe_ontologie
RUN pip install --no-cache-dir -c constraints.txt . \
 && chown -R airbyte:airbyte /airbyte/integration_code

ENV AIRBYTE_ENTRYPOINT="source-stripe-ontologie"
ENTRYPOINT ["source-stripe-ontologie"]

LABEL io.airbyte.name=ontologie/source-stripe-ontologie
LABEL io.airbyte.version=0.4.1

USER airbyte
