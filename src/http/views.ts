import path from 'node:path';
import { Eta } from 'eta';

/** Server-rendered pages from templates/pages, escaped by default (`<%= %>`). */
export class PageRenderer {
  private readonly eta: Eta;

  constructor(templatesDir: string) {
    this.eta = new Eta({ views: path.join(templatesDir, 'pages'), autoEscape: true, cache: true });
  }

  render(name: string, data: object): string {
    return this.eta.render(`./${name}.eta`, data);
  }
}
