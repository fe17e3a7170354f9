export declare const SOURCE_DIRS: readonly string[];
export declare const BUNDLE: string;
export declare function chooseEntry(root: string, env?: Record<string, string | undefined>): 'bundle' | 'source';
