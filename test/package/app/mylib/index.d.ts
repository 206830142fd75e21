export declare function shout(text: string): string;
