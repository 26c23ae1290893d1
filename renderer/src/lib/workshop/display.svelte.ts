/**
 * How the page looks: light or dark theme, and presenter mode (large type for a projector).
 * Both are kept in localStorage; until the user picks a theme, it follows the system's
 * (prefers-color-scheme), live. Applied as attributes of <html> (data-theme, class
 * "presenter"), which app.css styles; the consoles read `terminalTheme` and `terminalFontSize`.
 */
import { stored } from '../storage.js';

export type Theme = 'light' | 'dark';

const THEME_KEY = 'miglab.theme';
const PRESENTER_KEY = 'miglab.presenter';

/** xterm.js colours per theme (the consoles' ANSI colours stay xterm's defaults, readable on both). */
export const TERMINAL_THEMES = {
  dark: { background: '#14181f', foreground: '#e6e9ef', cursor: '#f0a500', selectionBackground: '#3a4a66' },
  light: {
    background: '#fbfbfd',
    foreground: '#1d2330',
    cursor: '#b36b00',
    selectionBackground: '#c7d7f2',
    // xterm's default yellow, white and bright colours vanish on a light background.
    blue: '#1f5fbf',
    brightBlue: '#1f5fbf',
    yellow: '#8a6100',
    brightYellow: '#8a6100',
    white: '#5a6375',
    brightWhite: '#1d2330',
    green: '#1d7a3e',
    brightGreen: '#1d7a3e',
    cyan: '#0b6f80',
    brightCyan: '#0b6f80',
  },
} as const;

class Display {
  /** The user's choice, or null: follow the system. */
  private chosen = $state<Theme | null>(null);
  private system = $state<Theme>('light');
  presenter = $state(false);

  constructor() {
    const t = stored(THEME_KEY);
    this.chosen = t === 'light' || t === 'dark' ? t : null;
    this.presenter = stored(PRESENTER_KEY) === '1';
    const mq = typeof matchMedia === 'function' ? matchMedia('(prefers-color-scheme: dark)') : null;
    this.system = mq?.matches ? 'dark' : 'light';
    mq?.addEventListener('change', (e) => {
      this.system = e.matches ? 'dark' : 'light';
      this.apply();
    });
    this.apply();
  }

  get theme(): Theme {
    return this.chosen ?? this.system;
  }

  get terminalTheme(): (typeof TERMINAL_THEMES)[Theme] {
    return TERMINAL_THEMES[this.theme];
  }

  get terminalFontSize(): number {
    return this.presenter ? 22 : 14;
  }

  toggleTheme(): void {
    this.chosen = this.theme === 'dark' ? 'light' : 'dark';
    localStorage.setItem(THEME_KEY, this.chosen);
    this.apply();
  }

  togglePresenter(): void {
    this.presenter = !this.presenter;
    localStorage.setItem(PRESENTER_KEY, this.presenter ? '1' : '0');
    this.apply();
  }

  private apply(): void {
    const root = document.documentElement;
    root.dataset.theme = this.theme;
    root.classList.toggle('presenter', this.presenter);
  }
}

export const display = new Display();
