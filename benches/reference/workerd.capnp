# workerd running the same functions edgefn runs in the throughput
# comparison: hello world (benches/reference/hello.js) and a small JSON API
# (benches/reference/api.js).
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .hello), (name = "api", worker = .api) ],
  sockets = [
    (name = "http", address = "*:18091", http = (), service = "main"),
    (name = "api", address = "*:18093", http = (), service = "api"),
  ],
);

const hello :Workerd.Worker = (
  modules = [ (name = "hello.js", esModule = embed "hello.js") ],
  compatibilityDate = "2025-01-01",
);

const api :Workerd.Worker = (
  modules = [ (name = "api.js", esModule = embed "api.js") ],
  compatibilityDate = "2025-01-01",
);
