import path from 'node:path';
import { Eta } from 'eta';

/**
 * Renders the mail templates of templates/mail: "<name>.txt.eta" (plain text, not escaped)
 * and "<name>.html.eta" (HTML, escaped by default).
 */
export class MailComposer {
  private readonly text: Eta;
  private readonly html: Eta;

  constructor(templatesDir: string) {
    const views = path.join(templatesDir, 'mail');
    this.text = new Eta({ views, autoEscape: false, autoTrim: false, cache: true });
    this.html = new Eta({ views, autoEscape: true, cache: true });
  }

  render(name: string, data: object): { text: string; html: string } {
    return {
      text: this.text.render(`./${name}.txt.eta`, data),
      html: this.html.render(`./${name}.html.eta`, data),
    };
  }
}
