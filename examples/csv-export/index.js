// Download your own data: the caller's AI generations or orders as a CSV file
// (or a spreadsheet Excel opens). Queries run as the caller, so row-level
// security decides what is in the file: the same policies as everywhere else.
//
// GET /functions/v1/csv-export/generations
// GET /functions/v1/csv-export/orders?format=xlsx&since=2025-01-01T00:00:00Z
//
// format: csv (default; RFC 4180) or xlsx (SpreadsheetML 2003, an XML
// workbook Excel opens: no zip library needed). since/until: RFC 3339 times,
// since inclusive, until exclusive, on created_at.

// What can be exported, and which columns. `datetime` columns become real
// dates in the spreadsheet; in the CSV they stay ISO 8601 text (UTC).
const DATASETS = {
  generations: {
    table: "generations",
    columns: [
      ["id", "text"], ["created_at", "datetime"], ["model", "text"], ["prompt", "text"], ["result", "text"],
      ["finish_reason", "text"], ["prompt_tokens", "number"], ["completion_tokens", "number"],
    ],
  },
  orders: {
    table: "orders",
    columns: [
      ["id", "text"], ["created_at", "datetime"], ["product", "text"], ["description", "text"], ["quantity", "number"],
      ["amount", "number"], ["currency", "text"], ["status", "text"], ["paid_at", "datetime"],
    ],
  },
};
// Rows per query (the server refuses more than --db-max-rows, 1,000 by
// default) and per file: past that, narrow the export with since/until.
const PAGE_ROWS = 500;
const MAX_ROWS = 20_000;

export default {
  async fetch(request, env, ctx) {
    if (request.method !== "GET") {
      return Response.json({ error: "method_not_allowed", message: "Use GET." }, { status: 405, headers: { allow: "GET" } });
    }
    const url = new URL(request.url);
    const name = url.pathname.split("/").filter(Boolean).pop();
    const dataset = Object.hasOwn(DATASETS, name) ? DATASETS[name] : null;
    if (!dataset) {
      const paths = Object.keys(DATASETS).map((d) => `/${ctx.functionName}/${d}`).join(" or ");
      return Response.json({ error: "unknown_dataset", message: `Export ${paths}.` }, { status: 404 });
    }
    const format = url.searchParams.get("format") ?? "csv";
    if (format !== "csv" && format !== "xlsx") {
      return Response.json({ error: "invalid_format", message: "format is csv or xlsx." }, { status: 400 });
    }
    const range = {};
    for (const bound of ["since", "until"]) {
      const value = url.searchParams.get(bound);
      if (value === null) continue;
      const time = new Date(value);
      if (Number.isNaN(time.getTime())) {
        return Response.json({ error: "invalid_range", message: `${bound} must be an RFC 3339 time.` }, { status: 400 });
      }
      range[bound] = time.toISOString();
    }

    const rows = await readAll(ctx.db, dataset, range);
    if (rows instanceof Response) return rows;

    const stamp = new Date().toISOString().slice(0, 10);
    const [body, type, extension] =
      format === "csv"
        ? [toCsv(dataset.columns, rows), "text/csv; charset=utf-8", "csv"]
        : [toSpreadsheetMl(name, dataset.columns, rows), "application/vnd.ms-excel", "xls"];
    return new Response(body, {
      headers: {
        "content-type": type,
        "content-disposition": `attachment; filename="${name}-${stamp}.${extension}"`,
        // The file holds the caller's own data: no shared cache may keep it.
        "cache-control": "private, no-store",
      },
    });
  },
};

/** Every row of the caller's, oldest first, a page at a time; or a Response saying why not. */
async function readAll(db, dataset, range) {
  const columns = dataset.columns.map(([column]) => column).join(",");
  const rows = [];
  for (;;) {
    let query = db.from(dataset.table).select(columns);
    if (range.since) query = query.gte("created_at", range.since);
    if (range.until) query = query.lt("created_at", range.until);
    // id breaks ties between equal timestamps, so pages neither skip nor repeat rows.
    const { data, error } = await query.order("created_at").order("id").range(rows.length, rows.length + PAGE_ROWS - 1);
    if (error) {
      console.error(`reading ${dataset.table} failed:`, error.code, error.message);
      return Response.json({ error: "export_failed", message: "The export could not be read; try again." }, { status: 500 });
    }
    rows.push(...data);
    if (rows.length > MAX_ROWS) {
      return Response.json(
        { error: "too_many_rows", message: `More than ${MAX_ROWS} rows: narrow the export with since and until.` },
        { status: 413 },
      );
    }
    if (data.length < PAGE_ROWS) return rows;
  }
}

// ----------------------------------------------------------------- CSV ---

/**
 * RFC 4180: CRLF line ends; a field with a comma, a double quote, CR or LF
 * is enclosed in double quotes, its quotes doubled. Starts with a UTF-8 BOM,
 * without which Excel reads UTF-8 as the machine's legacy code page.
 */
function toCsv(columns, rows) {
  const lines = [columns.map(([column]) => csvField(column)).join(",")];
  for (const row of rows) lines.push(columns.map(([column]) => csvField(row[column])).join(","));
  return "\uFEFF" + lines.join("\r\n") + "\r\n";
}

// A text cell starting with one of these is read as a formula by Excel,
// LibreOffice or Google Sheets (`=HYPERLINK(...)`, `@SUM(...)`, `-2+3`, and
// tab or CR, which some of them skip before looking); full-width forms too.
const FORMULA_START = /^[=+\-@\t\r\uFF1D\uFF0B\uFF0D\uFF20]/;

function csvField(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  let text = typeof value === "string" ? value : JSON.stringify(value);
  // Formula injection (OWASP "CSV injection"): a leading apostrophe makes
  // spreadsheets show the text as text. Numbers are never text, so a
  // negative number stays a number.
  if (FORMULA_START.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

// ------------------------------------------------------- SpreadsheetML ---

/**
 * An Excel 2003 XML workbook: one sheet, a bold header row, numbers as
 * numbers and timestamps as dates. Cell values are data, never formulas
 * (SpreadsheetML keeps formulas in an attribute we do not write), so no
 * formula guard is needed here.
 */
function toSpreadsheetMl(sheet, columns, rows) {
  const header = columns.map(([column]) => cell("String", column, "header")).join("");
  const body = rows.map((row) => `<Row>${columns.map(([column, type]) => typedCell(row[column], type)).join("")}</Row>`);
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<?mso-application progid="Excel.Sheet"?>\n' +
    '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet" xmlns:ss="urn:schemas-microsoft-com:office:spreadsheet">\n' +
    "<Styles>" +
    '<Style ss:ID="header"><Font ss:Bold="1"/></Style>' +
    '<Style ss:ID="datetime"><NumberFormat ss:Format="yyyy-mm-dd hh:mm:ss"/></Style>' +
    "</Styles>\n" +
    `<Worksheet ss:Name="${xml(sheet)}"><Table>\n` +
    `<Row>${header}</Row>\n` +
    body.map((row) => row + "\n").join("") +
    "</Table></Worksheet>\n</Workbook>\n"
  );
}

function typedCell(value, type) {
  if (value === null || value === undefined) return "<Cell/>";
  if (type === "number" && typeof value === "number" && Number.isFinite(value)) return cell("Number", String(value));
  if (type === "datetime" && typeof value === "string") {
    const time = new Date(value);
    // SpreadsheetML dates have no zone: written in UTC, like the CSV.
    if (!Number.isNaN(time.getTime())) return cell("DateTime", time.toISOString().slice(0, 23), "datetime");
  }
  return cell("String", typeof value === "string" ? value : JSON.stringify(value));
}

function cell(type, text, style) {
  const styleAttribute = style ? ` ss:StyleID="${style}"` : "";
  return `<Cell${styleAttribute}><Data ss:Type="${type}">${xml(text)}</Data></Cell>`;
}

/**
 * Text as XML character data: markup characters escaped, line breaks as
 * character references (so Excel keeps them inside the cell), and what XML
 * 1.0 cannot carry at all (other control characters, lone surrogates) dropped.
 */
function xml(text) {
  return String(text)
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "")
    .replace(/\r\n?/g, "\n")
    .replace(/[&<>"\n]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\n": "&#10;" })[c]);
}
