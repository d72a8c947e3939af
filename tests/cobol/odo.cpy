      * ODO - AN ORDER WITH 0 TO 5 ITEMS (OCCURS DEPENDING ON).
       01  ODO-REC.
           05  O-ID                PIC 9(4).
           05  O-CNT               PIC 9(2).
           05  O-NAME              PIC X(6).
           05  O-ITEMS OCCURS 0 TO 5 TIMES DEPENDING ON O-CNT.
               10  O-SKU           PIC X(4).
               10  O-QTY           PIC S9(3) COMP-3.
               10  O-PRICE         PIC S9(5)V99.
