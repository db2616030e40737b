# tierd and brokersim in one small image; docker-compose.yml runs both from it.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/ ./cmd/tierd ./devtools/cmd/brokersim

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/tierd /out/brokersim /usr/local/bin/
ENTRYPOINT []
CMD ["tierd", "--help"]
