/** Focus mode's layout (renderer/src/lib/workshop/focus.ts): what is kept, what is shown. */
import { describe, expect, it } from 'vitest';
import { defaultFocus, isShown, parseFocus, showBeside, showFirst } from '../../renderer/src/lib/workshop/focus.js';

const VIEWS = ['chain', 'consoles', 'states', 'threads', 'rammap', 'charts'];

describe('focus mode layout', () => {
  it('starts off, showing the first view when turned on', () => {
    expect(parseFocus(null, VIEWS)).toEqual({ on: false, views: ['chain'] });
    expect(defaultFocus(VIEWS)).toEqual({ on: false, views: ['chain'] });
  });

  it('reads back what it stored, and drops what the page no longer has', () => {
    expect(parseFocus(JSON.stringify({ on: true, views: ['consoles', 'charts'] }), VIEWS)).toEqual({ on: true, views: ['consoles', 'charts'] });
    expect(parseFocus(JSON.stringify({ on: true, views: ['gone', 'states'] }), VIEWS)).toEqual({ on: true, views: ['states'] });
    expect(parseFocus(JSON.stringify({ on: true, views: ['gone'] }), VIEWS)).toEqual({ on: true, views: ['chain'] });
    expect(parseFocus(JSON.stringify({ on: 'yes', views: ['states', 'states', 'charts', 'rammap'] }), VIEWS)).toEqual({ on: false, views: ['states', 'charts'] });
    expect(parseFocus('{not json', VIEWS)).toEqual({ on: false, views: ['chain'] });
  });

  it('shows one view first, and one beside it, never the same twice', () => {
    let l = { on: true, views: ['chain'] };
    l = showBeside(l, 'consoles');
    expect(l.views).toEqual(['chain', 'consoles']);
    l = showFirst(l, 'states');
    expect(l.views).toEqual(['states', 'consoles']);
    l = showFirst(l, 'consoles');
    expect(l.views).toEqual(['consoles']);
    expect(showBeside(l, 'consoles').views).toEqual(['consoles']);
    expect(showBeside({ on: true, views: ['chain', 'charts'] }, null).views).toEqual(['chain']);
  });

  it('shows every view outside focus mode, only the chosen ones in it', () => {
    expect(VIEWS.every((v) => isShown({ on: false, views: ['chain'] }, v))).toBe(true);
    expect(VIEWS.filter((v) => isShown({ on: true, views: ['chain', 'charts'] }, v))).toEqual(['chain', 'charts']);
  });
});
