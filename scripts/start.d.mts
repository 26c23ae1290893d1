// The types of start.mjs's exports, for the tests that import them (test/main/start.test.ts).

/** The installed electron package's folder, or null. */
export function electronPackageDir(): string | null;

/** Why Electron cannot start here, or null with the binary to run. */
export function electronLaunch(o: { electronDir: string | null; env: NodeJS.ProcessEnv; platform: NodeJS.Platform }): { reason: string } | { binary: string };
