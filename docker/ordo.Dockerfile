# The ordo image the container tests build: the final stage of the
# repository's Dockerfile, from a binary built on the host
# (CGO_ENABLED=0 go build -o ordo ./cmd/ordo) in the build context, since
# no golang image can be pulled here. Context: ordo, data/, tmp/.
FROM scratch
COPY --chown=65532:65532 data /data
COPY --chown=65532:65532 tmp /tmp
COPY ordo /ordo
USER 65532:65532
VOLUME /data
EXPOSE 8080 4222 2113
ENTRYPOINT ["/ordo"]
CMD ["serve", "--data", "/data", "--http", "0.0.0.0:8080", "--nats-listen", "0.0.0.0:4222", "--esdb-listen", "0.0.0.0:2113"]
