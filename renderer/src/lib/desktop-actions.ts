/**
 * The desktop app's menu actions (host/app-actions.ts), applied in the page. Each does what
 * the page's own control does: the display's theme and presenter toggles, the language
 * setting, the export buttons (pressed, so the download is theirs; Electron shows a Save
 * dialog for it). Scenario open/save go to whichever panel takes them (a cancelable
 * 'miglab:scenario-open' / 'miglab:scenario-save' event on window; a panel that handles one
 * calls preventDefault()). Anything the page cannot do right now is said in a notice,
 * never silently dropped.
 *
 * Loaded by host.svelte.ts only when the desktop bridge exists.
 */
import { get } from 'svelte/store';
import { _ } from 'svelte-i18n';
import type { AppAction } from '../../../host/app-actions.js';
import { LOCALES, setLocale, type LocaleId } from './i18n.js';
import { display } from './workshop/display.svelte.js';

/** The page's controls a menu presses (their data-testid). */
const BUTTONS = { 'export.trace': 'export-trace', 'export.csv': 'charts-csv' } as const;

function notice(text: string): void {
  // A modal notice: the desktop app has no other place the user is sure to look.
  alert(text);
}

const t = (key: string, values?: Record<string, string>) => get(_)(key, values ? { values } : undefined);

export function applyAppAction(a: AppAction): void {
  switch (a.action) {
    case 'presenter.toggle':
      display.togglePresenter();
      return;
    case 'theme':
      if (display.theme !== a.theme) display.toggleTheme();
      return;
    case 'language':
      if (LOCALES.some((l) => l.id === a.locale)) setLocale(a.locale as LocaleId);
      return;
    case 'export.trace':
    case 'export.csv': {
      const button = document.querySelector<HTMLButtonElement>(`[data-testid="${BUTTONS[a.action]}"]`);
      if (button && !button.disabled) button.click();
      else notice(t(`desktop.unavailable.${a.action === 'export.trace' ? 'trace' : 'csv'}`));
      return;
    }
    case 'scenario.open':
    case 'scenario.save': {
      const detail = a.action === 'scenario.open' ? { name: a.name, text: a.text } : {};
      const taken = !dispatchEvent(new CustomEvent(`miglab:${a.action.replace('.', '-')}`, { detail, cancelable: true }));
      if (!taken) notice(t(`desktop.unavailable.${a.action === 'scenario.open' ? 'open' : 'save'}`));
      return;
    }
    case 'notice':
      notice(a.text);
      return;
  }
}
