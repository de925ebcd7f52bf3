import test from 'ava';
import { trimReply } from '../src/mail/parse/quotes.ts';

const lines = (...l: string[]): string => l.join('\n');

test('Gmail reply in English: the header line and the quote below it are cut', (t) => {
  const mail = lines(
    'Hi Marek,',
    '',
    'the upload works again after the restart, thank you.',
    '',
    'Best,',
    'Jana',
    '',
    'On Tue, Mar 12, 2024 at 2:05 PM Research Support <support@example.org> wrote:',
    '',
    '> Dear Jana,',
    '>',
    '> we restarted the ingest node. Could you try again?',
    '>',
    '> Marek',
  );
  t.deepEqual(trimReply(mail), {
    text: 'Hi Marek,\n\nthe upload works again after the restart, thank you.\n\nBest,\nJana',
    quoted: true,
    signature: false,
  });
});

test('Gmail header wrapped over two and three lines is cut whole', (t) => {
  const two = lines(
    'Still failing with the same error, see the attached log.',
    '',
    'On Wed, Mar 13, 2024 at 9:41 AM Research Infrastructure Support Desk <',
    'support-desk@research.example.org> wrote:',
    '',
    '> Could you send us the log of the failed job?',
  );
  t.is(trimReply(two).text, 'Still failing with the same error, see the attached log.');

  const three = lines(
    'Thanks, that was it.',
    '',
    'On Wed, Mar 13, 2024 at 9:41 AM Maximiliane Hohenberg-Walderstein',
    'via Research Infrastructure Support Desk <',
    'support-desk@research.example.org> wrote:',
    '',
    '> Please check the quota of the project directory.',
  );
  t.deepEqual(trimReply(three), { text: 'Thanks, that was it.', quoted: true, signature: false });
});

test('a sentence starting with "On" that merely ends near "wrote:" is kept', (t) => {
  const mail = lines(
    'On Monday we upgraded the storage cluster.',
    'As the admin wrote:',
    'the old mount points stay for 2 weeks.',
  );
  t.deepEqual(trimReply(mail), { text: mail, quoted: false, signature: false });
});

test('Thunderbird in German: "Am … schrieb …:" is cut', (t) => {
  const mail = lines(
    'Hallo zusammen,',
    '',
    'der Zugang funktioniert jetzt, vielen Dank!',
    '',
    'Viele Grüße',
    'Katrin Vogel',
    '',
    'Am 12.03.2024 um 14:05 schrieb Support Forschungsdaten:',
    '> Sehr geehrte Frau Vogel,',
    '>',
    '> wir haben Ihr Konto freigeschaltet.',
  );
  t.is(trimReply(mail).text, 'Hallo zusammen,\n\nder Zugang funktioniert jetzt, vielen Dank!\n\nViele Grüße\nKatrin Vogel');
});

test('Apple Mail in French: "Le … a écrit :" with a no-break space before the colon is cut', (t) => {
  const mail = lines(
    'Bonjour,',
    '',
    'Le problème persiste depuis ce matin.',
    '',
    'Cordialement,',
    'Élodie Marchand',
    '',
    'Le 12 mars 2024 à 14:05, Support Calcul <support@calcul.example.fr> a écrit\u00a0:',
    '',
    '> Bonjour Madame Marchand,',
    '> pouvez-vous réessayer ?',
  );
  t.deepEqual(trimReply(mail), {
    text: 'Bonjour,\n\nLe problème persiste depuis ce matin.\n\nCordialement,\nÉlodie Marchand',
    quoted: true,
    signature: false,
  });
});

test('Spanish, Italian, Dutch and Portuguese reply headers are cut', (t) => {
  const headers = [
    'El mar, 12 mar 2024 a las 14:05, Soporte (<soporte@example.es>) escribió:',
    'Il giorno mar 12 mar 2024 alle ore 14:05 Supporto <supporto@example.it> ha scritto:',
    'Op di 12 mrt 2024 om 14:05 schreef Ondersteuning <hulp@example.nl>:',
    'Em ter., 12 de mar. de 2024 às 14:05, Suporte <suporte@example.pt> escreveu:',
  ];
  for (const header of headers) {
    t.is(trimReply(lines('Gracias, grazie, bedankt, obrigado.', '', header, '> old text')).text, 'Gracias, grazie, bedankt, obrigado.', header);
  }
});

test('Outlook desktop: the underscore line and the From/Sent/To/Subject block are cut', (t) => {
  const mail = lines(
    'Hello,',
    '',
    'attached is the screenshot you asked for.',
    '',
    'Kind regards',
    'Tomasz Wiśniewski',
    'Department of Physics',
    '',
    '________________________________',
    'From: Research Support <support@example.org>',
    'Sent: Tuesday, March 12, 2024 2:05 PM',
    'To: Tomasz Wiśniewski <t.wisniewski@uni.example.pl>',
    'Subject: [CIE#100231] VPN certificate expired',
    '',
    'Dear Tomasz,',
    '',
    'could you send us a screenshot of the error?',
  );
  t.deepEqual(trimReply(mail), {
    text: 'Hello,\n\nattached is the screenshot you asked for.\n\nKind regards\nTomasz Wiśniewski\nDepartment of Physics',
    quoted: true,
    signature: false,
  });
});

test('Outlook block in bold plain-text form and in German, without an underscore line', (t) => {
  const bold = lines(
    'Done, please close the ticket.',
    '',
    '*From:* Research Support <support@example.org>',
    '*Sent:* Tuesday, March 12, 2024 2:05 PM',
    '*To:* Ana Ruiz <ana.ruiz@example.es>',
    '*Subject:* Re: quota',
    '',
    'Dear Ana, …',
  );
  t.is(trimReply(bold).text, 'Done, please close the ticket.');

  const german = lines(
    'Erledigt.',
    '',
    'Von: Support <support@example.org>',
    'Gesendet: Dienstag, 12. März 2024 14:05',
    'An: Katrin Vogel <k.vogel@example.de>',
    'Betreff: Kontingent',
  );
  t.is(trimReply(german).text, 'Erledigt.');
});

test('Outlook "-----Original Message-----" and "-----Ursprüngliche Nachricht-----" are cut', (t) => {
  const english = lines(
    'Yes, the job ID is 4471823.',
    '',
    'Regards,',
    'Pieter',
    '',
    '-----Original Message-----',
    'From: Research Support [mailto:support@example.org]',
    'Sent: Tuesday, March 12, 2024 2:05 PM',
    'To: Pieter de Vries',
    'Subject: RE: job killed',
    '',
    'Which job ID was it?',
  );
  t.deepEqual(trimReply(english), { text: 'Yes, the job ID is 4471823.\n\nRegards,\nPieter', quoted: true, signature: false });

  const german = lines('Passt, danke.', '', '-----Ursprüngliche Nachricht-----', 'Von: Support', 'Text');
  t.is(trimReply(german).text, 'Passt, danke.');
});

test('pasted mail headers in a problem report are not taken for a quoted history', (t) => {
  const mail = lines(
    'Your server rejects our mail, here are the headers:',
    '',
    'Return-Path: <robot@lab.example.org>',
    'From: Lab Robot <robot@lab.example.org>',
    'Date: Tue, 12 Mar 2024 14:05:00 +0100',
    'To: support@example.org',
    'Subject: nightly report',
    '',
    'Can you have a look?',
  );
  t.deepEqual(trimReply(mail), { text: mail, quoted: false, signature: false });
});

test('an inline interleaved reply is kept whole', (t) => {
  const mail = lines(
    'Hi Marek,',
    '',
    'On Tue, Mar 12, 2024 at 2:05 PM Research Support <support@example.org> wrote:',
    '> Which browser do you use?',
    '',
    'Firefox 123 on Ubuntu.',
    '',
    '> Does it also happen in a private window?',
    '',
    'Yes, the same error.',
    '',
    'Jana',
  );
  t.deepEqual(trimReply(mail), { text: mail, quoted: false, signature: false });
});

test('the trailing quote below an interleaved reply is cut, the answers between quotes stay', (t) => {
  const mail = lines(
    '> Which browser do you use?',
    'Firefox 123.',
    '',
    '> Does it happen in a private window?',
    'Yes.',
    '',
    '> Best regards,',
    '> Marek',
  );
  t.deepEqual(trimReply(mail), {
    text: '> Which browser do you use?\nFirefox 123.\n\n> Does it happen in a private window?\nYes.',
    quoted: true,
    signature: false,
  });
});

test('a signature after "-- " is cut; a lone "--" only near the end', (t) => {
  const mail = lines(
    'The proxy settings were the problem, solved now.',
    '',
    '-- ',
    'Dr. Lena Hoffmann',
    'Institute for Climate Research',
    'Phone +49 30 1234567',
    '',
    'On Tue, Mar 12, 2024 at 2:05 PM Research Support <support@example.org> wrote:',
    '> Please check your proxy settings.',
  );
  t.deepEqual(trimReply(mail), { text: 'The proxy settings were the problem, solved now.', quoted: true, signature: true });

  const loose = lines('Works now.', '--', 'Lena Hoffmann', 'Climate Research');
  t.deepEqual(trimReply(loose), { text: 'Works now.', quoted: false, signature: true });

  const longAfter = lines('Steps:', '--', ...Array.from({ length: 12 }, (_, i) => `step ${i + 1}`));
  t.deepEqual(trimReply(longAfter), { text: longAfter, quoted: false, signature: false });
});

test('mobile footers at the end are cut', (t) => {
  const iphone = lines(
    'Thanks, will try tomorrow.',
    '',
    'Sent from my iPhone',
    '',
    '> On 12 Mar 2024, at 14:05, Research Support <support@example.org> wrote:',
    '>',
    '> Please try again.',
  );
  t.deepEqual(trimReply(iphone), { text: 'Thanks, will try tomorrow.', quoted: true, signature: true });

  const outlookMobile = lines(
    'OK',
    '',
    'Get Outlook for iOS<https://aka.example/ios>',
    '________________________________',
    'From: Research Support <support@example.org>',
    'Sent: Tuesday, March 12, 2024 2:05:11 PM',
    'To: Ana Ruiz <ana.ruiz@example.es>',
    'Subject: quota',
  );
  t.deepEqual(trimReply(outlookMobile), { text: 'OK', quoted: true, signature: true });

  t.is(trimReply('Danke!\n\nVon meinem iPhone gesendet').text, 'Danke!');
  t.is(trimReply('Fine.\n\nSent from Outlook for Android').text, 'Fine.');
});

test('a forwarded message is content and is kept', (t) => {
  const mail = lines(
    'Could you look at the message below? We got it from the storage system.',
    '',
    'Begin forwarded message:',
    '',
    'From: Storage Monitor <monitor@storage.example.org>',
    'Subject: Volume /projects 98% full',
    'Date: 12 March 2024 at 14:05:00 CET',
    'To: Lab Admins <admins@lab.example.org>',
    '',
    'The volume /projects has reached 98% of its quota.',
  );
  t.deepEqual(trimReply(mail), { text: mail, quoted: false, signature: false });
});

test('agent commands on top are kept untouched, the quote is cut', (t) => {
  const mail = lines(
    '/assign technical',
    '/priority high',
    'The user cannot log in since the certificate renewal.',
    '',
    'On Tue, Mar 12, 2024 at 2:05 PM Jana Novak <jana.novak@example.org> wrote:',
    '> I cannot log in any more.',
  );
  t.deepEqual(trimReply(mail), {
    text: '/assign technical\n/priority high\nThe user cannot log in since the certificate renewal.',
    quoted: true,
    signature: false,
  });
});

test('a mail that is only a quote, or starts with the header, comes back whole', (t) => {
  const onlyQuote = '> Please try again.\n> Marek\n';
  t.deepEqual(trimReply(onlyQuote), { text: '> Please try again.\n> Marek', quoted: false, signature: false });

  const headerFirst = lines(
    'On Tue, Mar 12, 2024 at 2:05 PM Research Support <support@example.org> wrote:',
    '> Please try again.',
  );
  t.deepEqual(trimReply(headerFirst), { text: headerFirst, quoted: false, signature: false });
});

test('empty and blank input', (t) => {
  t.deepEqual(trimReply(''), { text: '', quoted: false, signature: false });
  t.deepEqual(trimReply(' \n\t\n'), { text: '', quoted: false, signature: false });
});

test('CRLF line ends are normalised to LF', (t) => {
  const mail = 'Hi,\r\n\r\nit works now.  \r\n\r\n-- \r\nJana\r\n\r\nOn Tue, Mar 12, 2024 at 2:05 PM Support <support@example.org> wrote:\r\n> Try again.\r\n';
  t.deepEqual(trimReply(mail), { text: 'Hi,\n\nit works now.', quoted: true, signature: true });
});

test('hostile input of a megabyte returns without throwing', (t) => {
  const onOn = 'On On On On On On On On On On On On\n'.repeat(30_000);
  t.is(trimReply(onOn).text, onOn.trim());

  const angles = '>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>>\n'.repeat(25_000);
  t.deepEqual(trimReply(angles), { text: angles.trim(), quoted: false, signature: false });

  const oneLine = 'On '.repeat(350_000) + 'wrote:';
  t.is(trimReply(`Hello\n${oneLine}\n> x`).text, `Hello\n${oneLine}`);

  const headers = 'On 1 wrote:\n> a\nb\nFrom: x\nSent: y\n'.repeat(30_000);
  t.is(trimReply(headers).text, headers.trim());
});
