# Image of the livecommerce processes (workers, sink, gateway) for docker-compose / production.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY livecommerce ./livecommerce
COPY schemas ./schemas
COPY streams ./streams
COPY sentiment ./sentiment
COPY ws_gateway ./ws_gateway
COPY warehouse ./warehouse
COPY analytics ./analytics
COPY simulator ./simulator
COPY bench ./bench
RUN pip install --no-cache-dir -c constraints.txt ".[sentiment,analytics]"
ENV LC_LOG_FORMAT=json HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ENTRYPOINT ["livecommerce"]
