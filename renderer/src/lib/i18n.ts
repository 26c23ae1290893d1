/**
 * Every text of the UI, in English and 简体中文, switchable at run time (svelte-i18n).
 *
 * The base texts are locales/en.json and locales/zh-Hans.json; each feature of the UI may
 * keep its own texts beside them as locales/features/<feature>.<locale>.json (its keys
 * under its own top-level name), so features do not share one file. A test checks that
 * every feature has both languages with the same keys.
 */
import { addMessages, init, locale } from 'svelte-i18n';
import en from '../locales/en.json';
import zhHans from '../locales/zh-Hans.json';

export const LOCALES = [
  { id: 'en', label: 'English' },
  { id: 'zh-Hans', label: '简体中文' },
] as const;
export type LocaleId = (typeof LOCALES)[number]['id'];

const KEY = 'miglab.locale';

type Dict = Parameters<typeof addMessages>[1];
const features = import.meta.glob<Dict>('../locales/features/*.json', { eager: true, import: 'default' });

/** The feature files' texts of one locale. */
function featureMessages(id: LocaleId): Dict[] {
  return Object.entries(features)
    .filter(([path]) => path.endsWith(`.${id}.json`))
    .map(([, dict]) => dict);
}

export function setupI18n(): void {
  addMessages('en', en, ...featureMessages('en'));
  addMessages('zh-Hans', zhHans, ...featureMessages('zh-Hans'));
  const saved = localStorage.getItem(KEY);
  const fromBrowser = navigator.language.toLowerCase().startsWith('zh') ? 'zh-Hans' : 'en';
  const initial = LOCALES.some((l) => l.id === saved) ? saved! : fromBrowser;
  void init({ fallbackLocale: 'en', initialLocale: initial });
  document.documentElement.lang = initial;
}

export function setLocale(id: LocaleId): void {
  localStorage.setItem(KEY, id);
  document.documentElement.lang = id;
  void locale.set(id);
}
