-- wrk script for benches/reference/api.js: POSTs one small JSON item.
wrk.method = "POST"
wrk.body = '{"name":"widget","price":9.5,"tags":["a","b"]}'
wrk.headers["content-type"] = "application/json"
wrk.headers["x-client"] = "load-benchmark"
