# The console image: web (daphne), RQ worker and reasoner worker all run from it.
# For the in-process vLLM engine build with --build-arg EXTRAS=gpu on a CUDA base image.
FROM python:3.12-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.lock pyproject.toml ./
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
ARG EXTRAS=""
RUN if [ -n "$EXTRAS" ]; then pip install --no-cache-dir ".[${EXTRAS}]"; fi
RUN SECRET_KEY=build DATABASE_URL=postgres://build/build REDIS_URL=redis://build python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "console.asgi:application"]
