# The journey image: the CLI for the ingest workers and the projector.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY journey ./journey
COPY schemas ./schemas
RUN pip install --no-cache-dir .
RUN useradd --create-home journey && mkdir -p /data && chown journey /data
USER journey
ENV JOURNEY_HOME=/data
ENTRYPOINT ["journey"]
CMD ["--help"]
