import { describe, expect, it } from 'vitest';
import { escapeMarkup, formatPercent, htmlPage, htmlTable, reportBaseCss, svgDocument } from '../../activities/report/html';

describe('the report markup helpers', () => {
  it('escapes every character that could end a text node, an attribute value or start a tag', () => {
    expect(escapeMarkup(`<img src=x onerror="a('b')"> & co`)).toBe('&lt;img src=x onerror=&quot;a(&#39;b&#39;)&quot;&gt; &amp; co');
    expect(escapeMarkup('plain text')).toBe('plain text');
  });

  it('wraps a body in one self-contained page: doctype, UTF-8, the escaped title, the inline style sheet', () => {
    const page = htmlPage({ title: 'Scores <draft> & "notes"', css: '\nbody { margin: 0; }\n', body: '<h1>hi</h1>' });
    expect(page).toBe(
      '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Scores &lt;draft&gt; &amp; &quot;notes&quot;</title>\n<style>\nbody { margin: 0; }\n</style></head>\n<body>\n<h1>hi</h1>\n</body></html>\n',
    );
    expect(page).not.toContain('viewport');
    expect(htmlPage({ title: 't', css: '', body: '', responsive: true })).toContain('<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>t</title>');
  });

  it('builds tables, the report CSS, percentages and SVG roots', () => {
    expect(htmlTable('scores', '<tr><th>a</th></tr>', '<tr><td>1</td></tr>')).toBe('<table id="scores"><thead><tr><th>a</th></tr></thead><tbody><tr><td>1</td></tr></tbody></table>');
    expect(reportBaseCss()).toContain('th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }');
    expect(reportBaseCss({ cellVerticalAlign: 'top' })).toContain('text-align: right; vertical-align: top; }');
    expect(formatPercent(0.87654)).toBe('87.7%');
    expect(formatPercent(0.5, 0)).toBe('50%');
    expect(svgDocument({ width: 10, height: 20, content: '<rect/>' })).toBe('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="20"><rect/></svg>');
    expect(svgDocument({ id: 'chart', width: 1, height: 2, viewBox: '0 0 4 4', fontFamily: 'sans-serif', content: '' })).toBe(
      '<svg id="chart" xmlns="http://www.w3.org/2000/svg" width="1" height="2" viewBox="0 0 4 4" font-family="sans-serif"></svg>',
    );
  });
});
