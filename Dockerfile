# Ordo's image for users: a static binary on an empty base, run as a
# non-root user. Build it with `docker build -t ordo .`; docker-compose.yml
# uses it. The container tests (tests/containers) cannot pull golang:… here,
# so they build docker/ordo.Dockerfile from a binary built on the host; the
# final stage is the same.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# CGO off: SQLite is pure Go (modernc.org/sqlite) and pebble needs no cgo,
# so the binary runs on an empty base image.
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/ordo ./cmd/ordo \
	&& mkdir -p /out/data /out/tmp

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build --chown=65532:65532 /out/data /data
COPY --from=build --chown=65532:65532 /out/tmp /tmp
COPY --from=build /out/ordo /ordo
USER 65532:65532
VOLUME /data
# HTTP (query API and health), the embedded NATS and event store when no
# --nats-url / --esdb-url is given.
EXPOSE 8080 4222 2113
ENTRYPOINT ["/ordo"]
CMD ["serve", "--data", "/data", "--http", "0.0.0.0:8080", "--nats-listen", "0.0.0.0:4222", "--esdb-listen", "0.0.0.0:2113"]
