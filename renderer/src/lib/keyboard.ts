/**
 * The workshop's keys, as pure functions: which action a key press means, given where the
 * focus is. Presentation clickers send `.`, arrows and space, so those drive playback;
 * `p` presenter mode, `t` theme, `f` focus mode, `1`…`9` the view focus mode shows,
 * `r` a replay of the last run on the call chain, `?` the list of keys. No key fires while the user types
 * (a console's xterm textarea, an input, a select, anything editable), nor with Ctrl, Alt
 * or Meta (the browser's and the system's own shortcuts).
 *
 * Pure TypeScript (no DOM types needed): tested in Node.
 */
import type { SimAction } from '../../../host/api.js';

export type KeyAction =
  | { kind: 'playback'; toggle: true }
  | { kind: 'playback'; action: Extract<SimAction, 'step'> }
  | { kind: 'previous' }
  | { kind: 'help' }
  | { kind: 'close' }
  | { kind: 'presenter' }
  | { kind: 'theme' }
  | { kind: 'focus' }
  | { kind: 'replay' }
  /** Show the index-th view (0-based) in focus mode. */
  | { kind: 'view'; index: number };

/** Where the key was pressed. */
export type FocusContext =
  /** A text field, select, or console: keys are the user's typing. */
  | 'typing'
  /** A button or link: space and Enter activate it, as the browser does. */
  | 'control'
  | 'page';

export interface KeyPress {
  key: string;
  ctrlKey?: boolean;
  altKey?: boolean;
  metaKey?: boolean;
  repeat?: boolean;
}

/** The keys, as the help overlay lists them (`text`: the i18n key of what each does). */
export const KEY_HELP = [
  { id: 'pause', keys: ['Space'], text: 'workshop.keys.pause' },
  { id: 'step', keys: ['.', '→'], text: 'workshop.keys.step' },
  { id: 'previous', keys: ['←'], text: 'workshop.keys.previous' },
  { id: 'presenter', keys: ['p'], text: 'workshop.keys.presenter' },
  { id: 'theme', keys: ['t'], text: 'workshop.keys.theme' },
  { id: 'focus', keys: ['f'], text: 'layout.keys.focus' },
  { id: 'view', keys: ['1', '9'], text: 'layout.keys.view' },
  { id: 'replay', keys: ['r'], text: 'layout.keys.replay' },
  { id: 'help', keys: ['?'], text: 'workshop.keys.help' },
  { id: 'close', keys: ['Esc'], text: 'workshop.keys.close' },
] as const;

/** What a focused element is, from its tag, type and editability. */
export function focusContext(el: { tagName: string; isContentEditable?: boolean; type?: string } | null): FocusContext {
  if (!el) return 'page';
  const tag = el.tagName.toUpperCase();
  if (el.isContentEditable || tag === 'TEXTAREA' || tag === 'SELECT') return 'typing';
  if (tag === 'INPUT') {
    const t = (el.type ?? 'text').toLowerCase();
    return t === 'button' || t === 'submit' || t === 'checkbox' || t === 'radio' || t === 'reset' ? 'control' : 'typing';
  }
  if (tag === 'BUTTON' || tag === 'A' || tag === 'SUMMARY') return 'control';
  return 'page';
}

/** The action a key press means here, or null (leave the key to the browser). */
export function keyAction(k: KeyPress, where: FocusContext, helpOpen = false): KeyAction | null {
  if (k.ctrlKey || k.altKey || k.metaKey) return null;
  if (where === 'typing') return null;
  if (helpOpen && (k.key === 'Escape' || k.key === '?')) return { kind: 'close' };
  switch (k.key) {
    case ' ':
    case 'Spacebar':
      return where === 'control' || k.repeat ? null : { kind: 'playback', toggle: true };
    case '.':
    case 'ArrowRight':
      return { kind: 'playback', action: 'step' };
    case 'ArrowLeft':
      return { kind: 'previous' };
    case '?':
      return { kind: 'help' };
    case 'Escape':
      return null;
    case 'p':
    case 'P':
      return k.repeat ? null : { kind: 'presenter' };
    case 't':
    case 'T':
      return k.repeat ? null : { kind: 'theme' };
    case 'f':
    case 'F':
      return k.repeat ? null : { kind: 'focus' };
    case 'r':
    case 'R':
      return k.repeat ? null : { kind: 'replay' };
    default:
      return /^[1-9]$/.test(k.key) && !k.repeat ? { kind: 'view', index: Number(k.key) - 1 } : null;
  }
}

/** The sim.control action for a playback key, given the simulated run's state, or null when there is no run to drive. */
export function playbackAction(a: Extract<KeyAction, { kind: 'playback' }>, simState: 'none' | 'paused' | 'running' | 'ended' | null): SimAction | null {
  if (simState === null || simState === 'none') return null;
  if ('action' in a) return a.action;
  return simState === 'running' ? 'pause' : 'resume';
}
