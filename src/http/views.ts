import path from 'node:path';
import { Eta } from 'eta';
import type { StaticAssets } from './static-assets.ts';

/** Server-rendered pages from templates/pages, escaped by default (`<%= %>`). */
export class PageRenderer {
  private readonly eta: Eta;

  constructor(
    templatesDir: string,
    private readonly assets: StaticAssets,
  ) {
    this.eta = new Eta({ views: path.join(templatesDir, 'pages'), autoEscape: true, cache: true });
  }

  /** Every page may link a file of web/ by `it.asset('portal.css')` (its cache-safe address). */
  render(name: string, data: object): string {
    return this.eta.render(`./${name}.eta`, { ...data, asset: (file: string) => this.assets.url(file) });
  }
}
