# nats-server for the container tests, built from the Go module Ordo
# already depends on (CGO_ENABLED=0 go build -o nats-server
# github.com/nats-io/nats-server/v2), since the official image cannot be
# pulled here. Context: nats-server, data/. Users run the official nats
# image (docker-compose.yml).
FROM scratch
COPY --chown=65532:65532 data /data
COPY nats-server /nats-server
USER 65532:65532
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
CMD ["--jetstream", "--store_dir", "/data"]
