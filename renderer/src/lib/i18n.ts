/** Every text of the UI, in English and 简体中文, switchable at run time (svelte-i18n). */
import { addMessages, init, locale } from 'svelte-i18n';
import en from '../locales/en.json';
import zhHans from '../locales/zh-Hans.json';

export const LOCALES = [
  { id: 'en', label: 'English' },
  { id: 'zh-Hans', label: '简体中文' },
] as const;
export type LocaleId = (typeof LOCALES)[number]['id'];

const KEY = 'miglab.locale';

export function setupI18n(): void {
  addMessages('en', en);
  addMessages('zh-Hans', zhHans);
  const saved = localStorage.getItem(KEY);
  const fromBrowser = navigator.language.toLowerCase().startsWith('zh') ? 'zh-Hans' : 'en';
  const initial = LOCALES.some((l) => l.id === saved) ? saved! : fromBrowser;
  init({ fallbackLocale: 'en', initialLocale: initial });
  document.documentElement.lang = initial;
}

export function setLocale(id: LocaleId): void {
  localStorage.setItem(KEY, id);
  document.documentElement.lang = id;
  void locale.set(id);
}
