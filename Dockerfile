# One image for the worker and the API (docker-compose.yml runs it twice, with two commands).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin escalation

COPY pyproject.toml constraints.txt ./
COPY workflows/ workflows/
COPY activities/ activities/
COPY starter/ starter/
COPY config/ config/
COPY worker.py ./
# Bytecode is compiled at build time: the sandbox imports the workflow module afresh for every ticket it
# starts, and the app directory is read-only for the runtime user.
RUN pip install -c constraints.txt . \
 && python -m compileall -q workflows activities starter worker.py \
 && mkdir -p /app/var \
 && chown escalation /app/var

USER escalation
# Inside a container the API listens on every interface; the worker ignores these.
ENV ESCALATION_API_HOST=0.0.0.0 \
    ESCALATION_API_PORT=8000
EXPOSE 8000

# The worker by default; the API is `python -m starter.http`.
CMD ["python", "worker.py"]
