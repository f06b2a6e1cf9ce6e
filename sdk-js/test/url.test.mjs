import test from "node:test";
import assert from "node:assert/strict";
import { loadSection, createNative } from "./load-section.mjs";

const native = createNative();
const global = {};
const internal = {};
loadSection("url.js", native, global, internal);
const { URL, URLSearchParams } = global;

// Guard against accidentally testing Node's own classes.
test("installs its own classes on global and internal", () => {
  assert.equal(typeof URL, "function");
  assert.notEqual(URL, globalThis.URL);
  assert.notEqual(URLSearchParams, globalThis.URLSearchParams);
  assert.equal(internal.URL, URL);
  assert.equal(internal.URLSearchParams, URLSearchParams);
  assert.equal(Object.getOwnPropertyDescriptor(global, "URL").enumerable, false);
});

// ---------------------------------------------------------------------------
// URLSearchParams: construction
// ---------------------------------------------------------------------------

test("URLSearchParams parses a string, stripping one leading '?'", () => {
  assert.deepEqual([...new URLSearchParams("?a=1&b=2")], [["a", "1"], ["b", "2"]]);
  assert.deepEqual([...new URLSearchParams("??a=1")], [["?a", "1"]]);
  assert.deepEqual([...new URLSearchParams("")], []);
  assert.deepEqual([...new URLSearchParams()], []);
});

test("URLSearchParams parsing: empty sequences, missing '=', first '=' splits", () => {
  assert.deepEqual([...new URLSearchParams("&&a&b=&=c&d=e=f&")], [
    ["a", ""],
    ["b", ""],
    ["", "c"],
    ["d", "e=f"],
  ]);
});

test("URLSearchParams parsing: '+' is a space, percent-decoding is byte-wise UTF-8", () => {
  const params = new URLSearchParams("a+b=c+d&e=%2B&f=%C3%A9&g=%e2%82%ac");
  assert.equal(params.get("a b"), "c d");
  assert.equal(params.get("e"), "+");
  assert.equal(params.get("f"), "é");
  assert.equal(params.get("g"), "€");
});

test("URLSearchParams parsing: malformed escapes are kept, invalid UTF-8 becomes U+FFFD", () => {
  const params = new URLSearchParams("a=%zz&b=%&c=%4&d=%ff&e=100%");
  assert.equal(params.get("a"), "%zz");
  assert.equal(params.get("b"), "%");
  assert.equal(params.get("c"), "%4");
  assert.equal(params.get("d"), "\uFFFD");
  assert.equal(params.get("e"), "100%");
});

test("URLSearchParams from a record object", () => {
  const params = new URLSearchParams({ a: "1", b: 2, c: null });
  assert.deepEqual([...params], [["a", "1"], ["b", "2"], ["c", "null"]]);
  const withHidden = Object.create({ inherited: "x" }, {
    own: { value: "y", enumerable: true },
    hidden: { value: "z", enumerable: false },
  });
  assert.deepEqual([...new URLSearchParams(withHidden)], [["own", "y"]]);
});

test("URLSearchParams from a record: lone surrogate keys collapse, later value wins", () => {
  const params = new URLSearchParams({ "\uD835x": "1", xx: "2", "\uD83Dx": "3" });
  assert.equal(params.toString(), "%EF%BF%BDx=3&xx=2");
});

test("URLSearchParams from iterables of pairs", () => {
  assert.deepEqual([...new URLSearchParams([["a", "1"], ["a", "2"]])], [["a", "1"], ["a", "2"]]);
  const fromMap = new URLSearchParams(new Map([["k", "v"]]));
  assert.equal(fromMap.toString(), "k=v");
  function* pairs() {
    yield new Set(["x", "y"]);
  }
  assert.equal(new URLSearchParams(pairs()).get("x"), "y");
});

test("URLSearchParams rejects pairs without exactly two items", () => {
  assert.throws(() => new URLSearchParams([["a"]]), TypeError);
  assert.throws(() => new URLSearchParams([["a", "b", "c"]]), TypeError);
  assert.throws(() => new URLSearchParams([[]]), TypeError);
  assert.throws(() => new URLSearchParams(["ab"]), TypeError);
  assert.throws(() => new URLSearchParams([1]), TypeError);
});

test("URLSearchParams copies another URLSearchParams (not a live view)", () => {
  const original = new URLSearchParams("a=1&b=2");
  const copy = new URLSearchParams(original);
  original.append("c", "3");
  assert.equal(copy.toString(), "a=1&b=2");
  assert.equal(original.toString(), "a=1&b=2&c=3");
});

test("URLSearchParams(null) parses the string 'null'", () => {
  assert.equal(new URLSearchParams(null).toString(), "null=");
});

test("URLSearchParams rejects symbol values and record keys", () => {
  assert.throws(() => new URLSearchParams(Symbol("s")), TypeError);
  assert.throws(() => new URLSearchParams({ [Symbol("s")]: "v" }), TypeError);
});

// ---------------------------------------------------------------------------
// URLSearchParams: serialisation
// ---------------------------------------------------------------------------

test("serialisation: space is '+', '&' and '=' are escaped", () => {
  const params = new URLSearchParams();
  params.append("a b&c=d", "");
  assert.equal(params.toString(), "a+b%26c%3Dd=");
  assert.equal(new URLSearchParams([["a b", "c=d&e"]]).toString(), "a+b=c%3Dd%26e");
});

test("serialisation keeps only *-._ and alphanumerics; escapes ~ ! ' ( ) + / with upper-case hex", () => {
  const params = new URLSearchParams([["k", "*-._~!'()+/:?#%AZaz09"]]);
  assert.equal(params.toString(), "k=*-._%7E%21%27%28%29%2B%2F%3A%3F%23%25AZaz09");
});

test("serialisation UTF-8 encodes non-ASCII and replaces lone surrogates", () => {
  assert.equal(new URLSearchParams([["é", "€😀"]]).toString(), "%C3%A9=%E2%82%AC%F0%9F%98%80");
  assert.equal(new URLSearchParams([["x", "\uD800"]]).toString(), "x=%EF%BF%BD");
});

test("parse/serialise round trip of '+' and '%2B'", () => {
  const params = new URLSearchParams("a=%2B+%20");
  assert.equal(params.get("a"), "+  ");
  assert.equal(params.toString(), "a=%2B++");
});

// ---------------------------------------------------------------------------
// URLSearchParams: methods
// ---------------------------------------------------------------------------

test("append, get, getAll, has, size", () => {
  const params = new URLSearchParams();
  assert.equal(params.size, 0);
  params.append("a", "1");
  params.append("a", 2);
  params.append("b", "");
  assert.equal(params.size, 3);
  assert.equal(params.get("a"), "1");
  assert.equal(params.get("missing"), null);
  assert.deepEqual(params.getAll("a"), ["1", "2"]);
  assert.deepEqual(params.getAll("missing"), []);
  assert.equal(params.has("b"), true);
  assert.equal(params.has("c"), false);
  assert.equal(params.has("a", "2"), true);
  assert.equal(params.has("a", "3"), false);
});

test("required arguments are enforced", () => {
  const params = new URLSearchParams();
  assert.throws(() => params.append("a"), TypeError);
  assert.throws(() => params.set("a"), TypeError);
  assert.throws(() => params.get(), TypeError);
  assert.throws(() => params.delete(), TypeError);
});

test("delete by name, or by name and value", () => {
  const params = new URLSearchParams("a=1&b=2&a=3&a=1");
  params.delete("a", "1");
  assert.equal(params.toString(), "b=2&a=3");
  params.delete("a");
  assert.equal(params.toString(), "b=2");
  params.delete("a", undefined);
  assert.equal(params.toString(), "b=2");
});

test("set replaces the first match and removes the rest, or appends", () => {
  const params = new URLSearchParams("a=1&b=2&a=3&c=4");
  params.set("a", "x");
  assert.equal(params.toString(), "a=x&b=2&c=4");
  params.set("d", "y");
  assert.equal(params.toString(), "a=x&b=2&c=4&d=y");
});

test("sort is stable and orders by UTF-16 code units", () => {
  const params = new URLSearchParams("z=1&a=2&z=0&a=1&B=3&%F0%9F%8C%88=4&%EF%AC%83=5");
  params.sort();
  // "B" < "a" < "z"; U+1F308 (surrogates D83C..) sorts before U+FB03.
  assert.deepEqual([...params], [
    ["B", "3"],
    ["a", "2"],
    ["a", "1"],
    ["z", "1"],
    ["z", "0"],
    ["\u{1F308}", "4"],
    ["\uFB03", "5"],
  ]);
});

test("forEach passes (value, name, params) and honours thisArg", () => {
  const params = new URLSearchParams("a=1&b=2");
  const seen = [];
  const context = {};
  params.forEach(function (value, name, target) {
    seen.push([value, name, target === params, this === context]);
  }, context);
  assert.deepEqual(seen, [["1", "a", true, true], ["2", "b", true, true]]);
  assert.throws(() => params.forEach("nope"), TypeError);
});

test("entries, keys, values and the default iterator", () => {
  const params = new URLSearchParams("a=1&b=2");
  assert.deepEqual([...params.keys()], ["a", "b"]);
  assert.deepEqual([...params.values()], ["1", "2"]);
  assert.deepEqual([...params.entries()], [["a", "1"], ["b", "2"]]);
  assert.equal(params[Symbol.iterator], params.entries);
  const iterator = params.keys();
  assert.equal(iterator[Symbol.iterator](), iterator);
  assert.equal(Object.prototype.toString.call(iterator), "[object URLSearchParams Iterator]");
  assert.equal(Object.prototype.toString.call(params), "[object URLSearchParams]");
});

test("iterators are live over the list", () => {
  const params = new URLSearchParams("a=1");
  const iterator = params.keys();
  assert.deepEqual(iterator.next(), { value: "a", done: false });
  params.append("b", "2");
  assert.deepEqual(iterator.next(), { value: "b", done: false });
  assert.deepEqual(iterator.next(), { value: undefined, done: true });
});

test("methods reject foreign receivers", () => {
  assert.throws(() => URLSearchParams.prototype.get.call({}, "a"), TypeError);
  assert.throws(() => URLSearchParams.prototype.toString.call(new globalThis.URLSearchParams()), TypeError);
});

// ---------------------------------------------------------------------------
// URL: parsing and getters
// ---------------------------------------------------------------------------

test("URL getters for a full URL", () => {
  const url = new URL("HTTPS://user:pa%20ss@Example.COM:8443/a/../b/c?x=1&y=2#frag");
  assert.equal(url.href, "https://user:pa%20ss@example.com:8443/b/c?x=1&y=2#frag");
  assert.equal(url.protocol, "https:");
  assert.equal(url.username, "user");
  assert.equal(url.password, "pa%20ss");
  assert.equal(url.host, "example.com:8443");
  assert.equal(url.hostname, "example.com");
  assert.equal(url.port, "8443");
  assert.equal(url.pathname, "/b/c");
  assert.equal(url.search, "?x=1&y=2");
  assert.equal(url.hash, "#frag");
  assert.equal(url.origin, "https://example.com:8443");
  assert.equal(url.toString(), url.href);
  assert.equal(url.toJSON(), url.href);
  assert.equal(JSON.stringify({ url }), '{"url":"https://user:pa%20ss@example.com:8443/b/c?x=1&y=2#frag"}');
  assert.equal(`${url}`, url.href);
});

test("default ports are dropped; host has no ':' then", () => {
  const url = new URL("http://example.com:80/");
  assert.equal(url.port, "");
  assert.equal(url.host, "example.com");
  assert.equal(url.origin, "http://example.com");
});

test("relative URLs against a base", () => {
  assert.equal(new URL("../d?q", "http://h/a/b/c").href, "http://h/a/d?q");
  assert.equal(new URL("//other/x", "https://h/").href, "https://other/x");
  assert.equal(new URL("#f", "http://h/p?q").href, "http://h/p?q#f");
  assert.equal(new URL("http://abs/", "http://h/").href, "http://abs/");
  assert.equal(new URL("http://h/", undefined).href, "http://h/");
});

test("invalid input or base throws TypeError naming the input", () => {
  assert.throws(() => new URL("not a url"), { name: "TypeError", message: "Invalid URL: not a url" });
  assert.throws(() => new URL("/path"), TypeError);
  assert.throws(() => new URL("/path", "also not a url"), TypeError);
  assert.throws(() => new URL("/path", null), TypeError); // base "null" is invalid
  assert.throws(() => new URL("http://exa mple.com"), TypeError);
  assert.throws(() => new URL(), TypeError);
});

test("origin: special schemes, file:, opaque and blob URLs", () => {
  assert.equal(new URL("ws://h:81/").origin, "ws://h:81");
  assert.equal(new URL("ftp://h/").origin, "ftp://h");
  assert.equal(new URL("file:///etc/hosts").origin, "null");
  assert.equal(new URL("file://server/share").origin, "null");
  assert.equal(new URL("mailto:a@b.c").origin, "null");
  assert.equal(new URL("data:text/plain,hi").origin, "null");
  assert.equal(new URL("foo://h/").origin, "null");
  assert.equal(new URL("blob:https://h:8080/uuid").origin, "https://h:8080");
  assert.equal(new URL("blob:data:x").origin, "null");
});

test("IPv6 hosts keep their brackets", () => {
  const url = new URL("http://[::1]:3000/");
  assert.equal(url.hostname, "[::1]");
  assert.equal(url.host, "[::1]:3000");
});

test("URL.canParse and URL.parse", () => {
  assert.equal(URL.canParse("https://example.com"), true);
  assert.equal(URL.canParse("nope"), false);
  assert.equal(URL.canParse("/x", "https://example.com"), true);
  assert.equal(URL.canParse("/x", "bad base"), false);
  assert.equal(URL.canParse("/x"), false);
  const parsed = URL.parse("/x?y", "https://example.com/");
  assert.ok(parsed instanceof URL);
  assert.equal(parsed.href, "https://example.com/x?y");
  assert.equal(URL.parse("nope"), null);
  assert.equal(URL.parse("/x", "bad base"), null);
});

test("state is private: no own enumerable properties, brand-checked getters", () => {
  const url = new URL("http://h/");
  assert.deepEqual(Object.keys(url), []);
  assert.deepEqual(Reflect.ownKeys(url), []);
  assert.throws(() => Object.getOwnPropertyDescriptor(URL.prototype, "href").get.call({}), TypeError);
  assert.equal(Object.prototype.toString.call(url), "[object URL]");
});

// ---------------------------------------------------------------------------
// URL: live searchParams
// ---------------------------------------------------------------------------

test("searchParams is the same object every time and reflects the query", () => {
  const url = new URL("http://h/?a=1&b=%20x+y");
  assert.equal(url.searchParams, url.searchParams);
  assert.equal(url.searchParams.get("b"), " x y");
  assert.ok(url.searchParams instanceof URLSearchParams);
});

test("mutating searchParams rewrites the URL query (and keeps the hash)", () => {
  const url = new URL("http://h/p?a=1#top");
  url.searchParams.append("b", "x y&z");
  assert.equal(url.href, "http://h/p?a=1&b=x+y%26z#top");
  assert.equal(url.search, "?a=1&b=x+y%26z");
  url.searchParams.set("a", "2");
  assert.equal(url.search, "?a=2&b=x+y%26z");
  url.searchParams.sort();
  url.searchParams.delete("b");
  assert.equal(url.href, "http://h/p?a=2#top");
});

test("emptying searchParams removes the query entirely", () => {
  const url = new URL("http://h/p?a=1#f");
  url.searchParams.delete("a");
  assert.equal(url.href, "http://h/p#f");
  assert.equal(url.search, "");
});

test("setting search or href updates the existing searchParams object", () => {
  const url = new URL("http://h/?a=1");
  const params = url.searchParams;
  url.search = "?b=2&b=3";
  assert.equal(params, url.searchParams);
  assert.deepEqual(params.getAll("b"), ["2", "3"]);
  assert.equal(params.has("a"), false);
  url.href = "http://other/?c=4";
  assert.equal(params.get("c"), "4");
  assert.equal(params.size, 1);
  url.search = "";
  assert.equal(params.size, 0);
});

test("a live searchParams iterator sees URL updates", () => {
  const url = new URL("http://h/?a=1");
  const keys = url.searchParams.keys();
  url.search = "x=1&y=2";
  assert.deepEqual([...keys], ["x", "y"]);
});

test("copies of searchParams are not live", () => {
  const url = new URL("http://h/?a=1");
  const copy = new URLSearchParams(url.searchParams);
  copy.append("b", "2");
  assert.equal(url.href, "http://h/?a=1");
});

// ---------------------------------------------------------------------------
// URL: setters
// ---------------------------------------------------------------------------

test("href setter replaces everything and throws on invalid input", () => {
  const url = new URL("http://h/");
  url.href = "https://example.org/x#y";
  assert.equal(url.host, "example.org");
  assert.equal(url.hash, "#y");
  assert.throws(() => {
    url.href = "not a url";
  }, TypeError);
  assert.equal(url.href, "https://example.org/x#y");
});

test("protocol setter", () => {
  const url = new URL("http://h:443/p?q#f");
  url.protocol = "https";
  // 443 is https's default port, so it disappears.
  assert.equal(url.href, "https://h/p?q#f");
  url.protocol = "wss:ignored";
  assert.equal(url.protocol, "wss:");
  url.protocol = "WS";
  assert.equal(url.protocol, "ws:");
});

test("protocol setter ignores invalid schemes and special/non-special switches", () => {
  const url = new URL("http://h/");
  url.protocol = "1http";
  url.protocol = "ht tp";
  url.protocol = "";
  url.protocol = "foo"; // special -> non-special is not allowed
  assert.equal(url.href, "http://h/");
  const other = new URL("foo://h/");
  other.protocol = "http"; // non-special -> special is not allowed
  assert.equal(other.href, "foo://h/");
  other.protocol = "bar";
  assert.equal(other.href, "bar://h/");
  const withCredentials = new URL("http://u@h/");
  withCredentials.protocol = "file";
  assert.equal(withCredentials.protocol, "http:");
});

test("username and password setters percent-encode the userinfo set", () => {
  const url = new URL("http://h/p");
  url.username = "a@b:c";
  url.password = "p/w d";
  assert.equal(url.href, "http://a%40b%3Ac:p%2Fw%20d@h/p");
  assert.equal(url.username, "a%40b%3Ac");
  url.password = "";
  assert.equal(url.href, "http://a%40b%3Ac@h/p");
  url.username = "";
  assert.equal(url.href, "http://h/p");
});

test("username/password/port setters are ignored where they cannot apply", () => {
  const file = new URL("file:///tmp/x");
  file.username = "u";
  file.password = "p";
  file.port = "8080";
  assert.equal(file.href, "file:///tmp/x");
  const mailto = new URL("mailto:someone@example.com");
  mailto.username = "u";
  mailto.port = "1";
  assert.equal(mailto.href, "mailto:someone@example.com");
});

test("host setter changes host and port; port kept when not given", () => {
  const url = new URL("http://u:p@h:8080/p?q#f");
  url.host = "example.com";
  assert.equal(url.href, "http://u:p@example.com:8080/p?q#f");
  url.host = "example.org:99";
  assert.equal(url.href, "http://u:p@example.org:99/p?q#f");
  url.host = "example.net:80/ignored?x#y";
  assert.equal(url.href, "http://u:p@example.net/p?q#f");
  url.host = "[::1]:5";
  assert.equal(url.host, "[::1]:5");
});

test("host setter ignores invalid hosts", () => {
  const url = new URL("http://h/");
  for (const value of ["", ":80", "a b", "a@b", "exa%mple.com", "h:99999"]) {
    url.host = value;
    assert.equal(url.href, "http://h/", `host = ${JSON.stringify(value)}`);
  }
});

test("hostname setter ignores values containing a port", () => {
  const url = new URL("http://h:81/");
  url.hostname = "example.com";
  assert.equal(url.href, "http://example.com:81/");
  url.hostname = "other.com:82";
  assert.equal(url.href, "http://example.com:81/");
  url.hostname = "";
  assert.equal(url.href, "http://example.com:81/");
  url.hostname = "UPPER.example";
  assert.equal(url.hostname, "upper.example");
});

test("port setter", () => {
  const url = new URL("http://h/p");
  url.port = "8080";
  assert.equal(url.href, "http://h:8080/p");
  url.port = "81abc";
  assert.equal(url.port, "81");
  url.port = "80"; // default port
  assert.equal(url.port, "");
  url.port = 3000;
  assert.equal(url.port, "3000");
  url.port = "abc";
  url.port = "65536";
  assert.equal(url.port, "3000");
  url.port = "";
  assert.equal(url.href, "http://h/p");
});

test("pathname setter encodes '?' and '#' and normalises", () => {
  const url = new URL("http://h/old?q=1#f");
  url.pathname = "a?b#c d";
  assert.equal(url.href, "http://h/a%3Fb%23c%20d?q=1#f");
  assert.equal(url.search, "?q=1");
  assert.equal(url.hash, "#f");
  url.pathname = "/x/./y/../z";
  assert.equal(url.pathname, "/x/z");
  url.pathname = "";
  assert.equal(url.pathname, "/");
});

test("pathname setter on non-special and opaque URLs", () => {
  const opaque = new URL("mailto:me@example.com");
  opaque.pathname = "/other";
  assert.equal(opaque.href, "mailto:me@example.com");
  const noHost = new URL("foo:/a");
  noHost.pathname = "//b";
  assert.equal(noHost.pathname, "//b");
  assert.equal(noHost.host, "");
  assert.equal(noHost.href, "foo:/.//b");
});

test("search setter: '?' optional, '#' encoded, '' and '?' clear it", () => {
  const url = new URL("http://h/p#f");
  url.search = "a=1";
  assert.equal(url.href, "http://h/p?a=1#f");
  url.search = "??b=2";
  assert.equal(url.search, "??b=2");
  url.search = "c=#d";
  assert.equal(url.href, "http://h/p?c=%23d#f");
  assert.equal(url.searchParams.get("c"), "#d");
  url.search = "";
  assert.equal(url.href, "http://h/p#f");
  url.search = "?";
  assert.equal(url.search, "");
  assert.equal(url.searchParams.size, 0);
  url.search = "x= trailing ";
  assert.equal(url.search, "?x=%20trailing%20");
});

test("hash setter: '#' optional, '' clears it", () => {
  const url = new URL("http://h/p?q");
  url.hash = "top";
  assert.equal(url.href, "http://h/p?q#top");
  url.hash = "#a b";
  assert.equal(url.hash, "#a%20b");
  url.hash = "";
  assert.equal(url.href, "http://h/p?q");
  assert.equal(url.search, "?q");
});

test("setters keep an empty query and an empty fragment intact", () => {
  const url = new URL("http://h/p?#");
  url.pathname = "/x";
  assert.equal(url.href, "http://h/x?#");
});
