# tierd and brokersim in one small image; docker-compose.yml runs both from it.
#
# The image runs `tierd` (ENTRYPOINT), so a Kubernetes `args: ["run", ...]` or a
# `docker run tierd:dev run --config ...` execs `tierd run ...`. It runs as uid/gid 3000,
# the uid of the apache/rocketmq image's rocketmq user, so the files tierd reads (and with
# local.delete_after, deletes) in a shared broker volume are its own; change TIERD_UID /
# TIERD_GID at build time for a broker running as another uid.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/ ./cmd/tierd ./devtools/cmd/brokersim

FROM debian:bookworm-slim
ARG TIERD_UID=3000
ARG TIERD_GID=3000
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid "${TIERD_GID}" tierd \
 && useradd --uid "${TIERD_UID}" --gid "${TIERD_GID}" --no-create-home --shell /usr/sbin/nologin tierd \
 && mkdir -p /data /var/lib/tierd /var/lib/tierd-hdd \
 && chown "${TIERD_UID}:${TIERD_GID}" /data /var/lib/tierd /var/lib/tierd-hdd
COPY --from=build /out/tierd /out/brokersim /usr/local/bin/
# Numeric, so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 3000:3000
ENTRYPOINT ["tierd"]
CMD ["--help"]
