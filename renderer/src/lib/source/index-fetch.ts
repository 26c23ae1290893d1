/**
 * The source index, built with the renderer (dist-renderer/source-index.json, see
 * renderer/build/source-index.ts): fetched once, when the source view first needs it (a
 * function chosen, or its search box focused: SourceView.svelte), not at page load; asked
 * again only after a failed fetch.
 */
import { SOURCE_INDEX_FILE, type LabSourceIndex } from '../../../../core/trace/qemu-files.js';

let loading: Promise<LabSourceIndex> | null = null;

export function loadSourceIndex(): Promise<LabSourceIndex> {
  loading ??= fetch(`./${SOURCE_INDEX_FILE}`).then(async (r) => {
    if (!r.ok) throw new Error(`${SOURCE_INDEX_FILE}: HTTP ${r.status}`);
    return (await r.json()) as LabSourceIndex;
  });
  loading.catch(() => (loading = null));
  return loading;
}
