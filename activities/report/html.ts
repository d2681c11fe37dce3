/**
 * The markup every page and picture the project renders shares: the VQA retention report, the
 * evaluation campaign's report, the relabel spot check (page and PNG contact sheet) and the
 * simulator's SVG frames. Pages are single self-contained files: no scripts, nothing fetched.
 */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Safe in HTML text, HTML attribute values and SVG text alike. */
export function escapeMarkup(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

export interface HtmlPage {
  /** Plain text; escaped here. */
  title: string;
  /** The page's style sheet, inlined as given. */
  css: string;
  /** The markup inside `<body>`, as given. */
  body: string;
  /** Adds the viewport meta tag, for pages whose CSS adapts to narrow screens. @default false */
  responsive?: boolean;
}

/** A complete HTML document: doctype, UTF-8, title, inline style sheet, body. */
export function htmlPage(page: HtmlPage): string {
  const viewport = page.responsive ? '<meta name="viewport" content="width=device-width, initial-scale=1">' : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">${viewport}<title>${escapeMarkup(page.title)}</title>
<style>${page.css}</style></head>
<body>
${page.body}
</body></html>
`;
}

/**
 * The report pages' common look: sans-serif text, bordered tables of figures aligned right with the
 * first column (the row's name) aligned left. `cellVerticalAlign: 'top'` for tables whose cells wrap.
 */
export function reportBaseCss(options: { cellVerticalAlign?: 'top' } = {}): string {
  const align = options.cellVerticalAlign ? ` vertical-align: ${options.cellVerticalAlign};` : '';
  return `
body { font-family: sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 12px 0 24px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right;${align} }
th:first-child, td:first-child { text-align: left; }
`;
}

/** A table with one header row markup and the body rows' markup, both given as markup. */
export function htmlTable(id: string, headRow: string, bodyRows: string): string {
  return `<table id="${escapeMarkup(id)}"><thead>${headRow}</thead><tbody>${bodyRows}</tbody></table>`;
}

/** A fraction as a percentage with `digits` decimals: 0.8765 -> "87.7%". */
export function formatPercent(fraction: number, digits = 1): string {
  return `${(fraction * 100).toFixed(digits)}%`;
}

export interface SvgDocument {
  width: number;
  height: number;
  /** The element's id, for pages that inline the SVG. */
  id?: string;
  /** User units, when they differ from the pixel size. */
  viewBox?: string;
  /** A CSS font-family list for all text; a constant of the caller, inserted as given. */
  fontFamily?: string;
  /** The drawing, as SVG markup. */
  content: string;
}

/** A standalone SVG document (inlined in a page, or rasterised by sharp/librsvg). */
export function svgDocument(svg: SvgDocument): string {
  const id = svg.id !== undefined ? ` id="${escapeMarkup(svg.id)}"` : '';
  const viewBox = svg.viewBox !== undefined ? ` viewBox="${svg.viewBox}"` : '';
  const font = svg.fontFamily !== undefined ? ` font-family="${svg.fontFamily}"` : '';
  return `<svg${id} xmlns="http://www.w3.org/2000/svg" width="${svg.width}" height="${svg.height}"${viewBox}${font}>${svg.content}</svg>`;
}
