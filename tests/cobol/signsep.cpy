      * SIGNSEP - SEPARATE SIGN CHARACTERS, LEADING AND TRAILING, ON
      * ELEMENTARY ITEMS AND FROM A GROUP'S SIGN CLAUSE (WHICH APPLIES
      * TO ITS SIGNED ITEMS ONLY; AN ITEM'S OWN SIGN CLAUSE TAKES
      * PRECEDENCE).
       01  SGN-REC.
           05  S-ID                PIC 9(4).
           05  S-LEAD              PIC S9(4) SIGN LEADING SEPARATE.
           05  S-TRAIL             PIC S9(3)V99 SIGN TRAILING SEPARATE.
           05  S-GRP-L SIGN IS LEADING SEPARATE CHARACTER.
               10  S-GL-S          PIC S9(3).
               10  S-GL-U          PIC 9(3).
               10  S-GL-O          PIC S9(2) SIGN TRAILING.
           05  S-GRP-T SIGN TRAILING SEPARATE.
               10  S-GT-S          PIC S9(2)V9.
               10  S-GT-U          PIC 9(2)V9.
