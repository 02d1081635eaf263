# The site in a container: built in one stage with the same command as on
# a server (docs/deploy.md, "From a fresh server"), run in a small one as
# an unprivileged user, with the data and the logs on volumes.
#
#   docker build -t blog .
#   docker run -d --name blog -p 127.0.0.1:5000:5000 \
#       -v blog-data:/srv/site/data -v blog-logs:/srv/site/logs blog
#   docker exec -it blog host cmd admin create-user alice
#   docker kill --signal=HUP blog     # reload: a new process, no request lost
#
# The host is the container's PID 1: it stays a supervisor, so a reload
# keeps the container running; `docker stop` sends SIGTERM, and requests in
# flight get 30 s to finish (give `docker stop -t 35`).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# the host and every app, in release; the apps' libraries go into apps/
RUN cargo xtask install

FROM debian:bookworm-slim
RUN useradd --system --home-dir /srv/site --shell /usr/sbin/nologin host \
    && install -d -o root -g host -m 0750 /srv/site /srv/site/apps /srv/site/shared \
    && install -d -o host -g host -m 0700 /srv/site/data /srv/site/logs
COPY --from=build /src/target/release/host /usr/local/bin/host
COPY --from=build /src/apps/*.so /srv/site/apps/
COPY --from=build /src/shared/static /srv/site/shared/static
COPY --from=build /src/plugins.json /srv/site/plugins.json
WORKDIR /srv/site
USER host
VOLUME ["/srv/site/data", "/srv/site/logs"]
# every address of the container: the port is published by `docker run -p`
# (set allowed_hosts in plugins.json to the site's names)
ENV HOST_LISTEN=0.0.0.0:5000 HOST_CONFIG=/srv/site/plugins.json
EXPOSE 5000
STOPSIGNAL SIGTERM
CMD ["host", "serve"]
